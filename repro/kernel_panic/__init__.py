"""kernel_panic: build servers panic under concurrent disk filling (postmortem 000, issue #0)."""
