"""Sub-commands of ``crowdsafe``, one module each."""
