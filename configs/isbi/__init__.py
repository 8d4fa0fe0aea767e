"""Recipes for the ISBI 2012 EM segmentation challenge stacks (`isbi:<root>`)."""
