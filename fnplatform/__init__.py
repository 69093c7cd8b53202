# The project's own apps, in load order: the server's settings and the workers' both
# install them (the workers with no database), from this one list.
PROJECT_APPS = ["fnplatform.accounts", "functions", "valves", "chat"]
