"""Reports for people: the officer's monthly records and the demo's HTML page."""
