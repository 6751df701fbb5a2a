"""fink_core package of mm_broker."""
