"""mongo_index_lock: index re-declaration storms stall the database (postmortem 002)."""
