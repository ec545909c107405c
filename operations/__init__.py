"""What changes the guest: one module per concern, each step idempotent and reporting
what it changed. The `network`, `identity`, `storage` and `userscript` modules declare the
steps of their phase (`STEPS`); `fsm/phases.py` collects them."""
