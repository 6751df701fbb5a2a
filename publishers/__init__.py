"""publishers package of mm_broker."""
