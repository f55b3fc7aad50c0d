"""single_branch: a shallow checkout of a non-master commit (the "bunk git upgrade")."""
