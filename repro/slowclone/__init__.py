"""slowclone: the build's checkout step under heavy packet loss (postmortem issue #1)."""
