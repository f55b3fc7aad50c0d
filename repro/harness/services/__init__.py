"""Services the incidents use: the git server (daemon, smart HTTP, generated repositories) and
database targets (PostgreSQL, MongoDB)."""
