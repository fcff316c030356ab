from setuptools import setup

# The twistd plugin is a module of the twisted.plugins namespace package (twisted/ has no
# __init__.py on purpose); everything else is in setup.cfg.
setup(py_modules=["twisted.plugins.sockjs_twisted_plugin"])
