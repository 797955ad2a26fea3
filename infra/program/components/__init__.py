"""Pulumi components. Every child is created with `parent=self`, so the stack's one explicit
`aws.Provider` (passed to the component via `providers=`) reaches it; a child without a parent
silently falls back to the default provider and region."""
