"""What the agent can do beyond talking: tools the LLM calls mid-call (tools.py, runs.py,
builtin.py, webhooks.py, demo_orders.py, catalog.py) and the agent file (spec.py)."""
