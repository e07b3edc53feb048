"""HTTP controllers (JSON API, pages), the error table, the admin guard and static assets."""
