"""The operators' console at /console: login, the consultant queue, conversations, insights and the audit log.

`auth` (argon2 passwords, database sessions, CSRF tokens, lockout) and `insights` are plain modules; the HTTP side is
`bot/api/routes/console.py`, rendering the Jinja2 templates in `templates/` (server-rendered HTML and plain forms;
`static/console.js` only refreshes the queue and the open conversation when the database says they changed).
"""
