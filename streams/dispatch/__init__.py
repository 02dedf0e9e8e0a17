"""The dispatch side of the alert machinery: what incidents become for the people who act."""
