"""skymaps package of mm_broker."""
