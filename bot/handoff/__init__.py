"""Handoff to a career consultant: who asks for a person, when someone will read it, and what the bot does meanwhile.

Plain modules that know nothing of HTTP or LINE: `hours` (reception hours from configuration), `phrases` (a request
for a person, a return to the bot), `desk` (the engine's routing step and the consultant's actions on the store),
`insights` (what the console's admins see).
"""
