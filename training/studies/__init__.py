"""Research studies on the shipped procedures, and the commands that run them."""
