"""listeners package of mm_broker."""
