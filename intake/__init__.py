"""The domain of the intake gateway: the application form, the conversation engine and its rules.

Pure Python: nothing here imports a channel, a web framework or a database driver.
"""
