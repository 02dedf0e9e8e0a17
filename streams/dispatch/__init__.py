"""Delivery of routed incident transitions beyond their Kafka topics: webhooks."""
