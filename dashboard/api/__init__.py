"""JSON endpoints: clips, accounts, ledger (the publishing endpoints live in publishing/api.py)."""
