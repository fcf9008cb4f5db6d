"""The one base class of the errors that bad input raises, torch-free so that any command can catch
it without importing the detector."""


class InputError(ValueError):
    """Something the user gave (a config value, a scenario, a file, a folder) that cannot be used.

    Its message is one line that names what is wrong; the command line prints it and exits with
    code 2. Each package subclasses it (ConfigError, ScenarioError, DatasetError, ...)."""
