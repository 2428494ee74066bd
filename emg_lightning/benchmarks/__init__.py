"""Speed measurements (not tests): each module prints a report and can write it as JSON."""
