"""Access control: scoped API tokens and the audit log of management calls."""
