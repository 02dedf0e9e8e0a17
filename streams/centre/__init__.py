"""The command centre (``crowdsafe centre``): the whole site's live view built from the topics,
served to a page with users, roles and an event stream (README "Command centre")."""
