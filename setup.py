from setuptools import setup

# The twistd plugin lives in the twisted.plugins namespace; it is shipped as a plain data
# file (twisted/ has no __init__.py on purpose).
setup(
    data_files=[("twisted/plugins", ["twisted/plugins/sockjs_twisted_plugin.py"])],
    py_modules=["twisted.plugins.sockjs_twisted_plugin"],
)
