"""The budget view: what a yearly budget buys, split across clouds, tiers and vendors."""
