"""The Faust app: topics, records, agents, web views and the ``crowdsafe`` command."""
