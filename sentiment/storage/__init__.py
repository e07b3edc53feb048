"""SQLAlchemy tables, repositories, the write-behind writer and database plumbing."""
