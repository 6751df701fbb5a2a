"""coincidence package of mm_broker."""
