"""``termwatch demo``: its fleet (``demo.yaml``, a simulator scenario) and the program that
runs it (:mod:`termwatch.demo_data.runner`)."""
