"""How the commands run on a machine: errors and their one-line messages, atomic files, the console (progress,
tables), quiet third-party logs, devices and CPU memory. No data, no models: every floor may use it."""
