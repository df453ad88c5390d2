"""Object keys as ``aws s3 cp``, s5cmd and rclone make them.

``file_key(prefix, name, only_file)`` is the key of a file given on the command line (not found
inside a directory): ``prefix`` is DEST's key part, ``name`` the file's base name, ``only_file``
True when that file is the one and only SOURCE.

====================  ==============  =========  ==================  ==========================
DEST                  prefix          only_file  key of meta.json    why
====================  ==============  =========  ==================  ==========================
``s3://photos``       ``""``          True       ``meta.json``       no prefix: the name
``s3://photos/``      ``""``          True       ``meta.json``       no prefix: the name
``s3://photos/a/``    ``a/``          True       ``a/meta.json``     ends in ``/``: a folder
``s3://photos/r.json`` ``r.json``     True       ``r.json``          one file: DEST is its key
``s3://photos/a``     ``a``           False      ``a/meta.json``     several sources: a folder
====================  ==============  =========  ==================  ==========================

``manifest_key(path, folder)`` is the key of a manifest line's ``path`` (the line gave no
``key``), relative to ``folder``: the ``--base DIR`` given, or else, for absolute paths, the
longest folder common to the manifest's absolute paths (``common_folder``). None when the path
is not inside ``folder`` or names no file (the line needs a key).

=======================  ===========  ==================  ===================================
path                     folder       key                 why
=======================  ===========  ==================  ===================================
``sub/a.txt``            None         ``sub/a.txt``       relative: as written
``./sub/a.txt``          None         ``sub/a.txt``       a leading ``./`` is not a folder
``/data/sub/p3.parquet`` ``/data``    ``sub/p3.parquet``  relative to the common folder
``/data/p3.parquet``     ``/data/``   ``p3.parquet``      a trailing ``/`` on folder is fine
``/other/x``             ``/data``    None                outside the folder: give a key
``/data``                ``/data``    None                the folder itself names no file
``sub/``                 None         None                names no file
=======================  ===========  ==================  ===================================

``common_folder(folder, path)`` folds one more absolute path into the folder common so far
(None before the first): ``common_folder(None, "/data/a/x")`` is ``/data/a``, then with
``/data/b/y`` it is ``/data``. Memory is one path, whatever the manifest's length.
"""

from __future__ import annotations

import posixpath


def file_key(prefix: str, name: str, only_file: bool) -> str:
    """The key of a file given as a SOURCE; see the module's first table."""
    if not prefix:
        return name
    if prefix.endswith("/"):
        return prefix + name
    if only_file:
        return prefix
    return f"{prefix}/{name}"


def manifest_key(path: str, folder: str | None) -> str | None:
    """The key of a manifest ``path`` relative to ``folder``; see the module's second table."""
    if folder is None:
        name = path
        while name.startswith(("./", "/")):
            name = name[2:] if name.startswith("./") else name[1:]
    else:
        root = folder.rstrip("/") + "/" if folder.rstrip("/") else "/"
        normal = posixpath.normpath(path)
        if not normal.startswith(root):
            return None
        name = normal[len(root) :]
    if not name or name.endswith("/"):
        return None
    return name


def common_folder(folder: str | None, path: str) -> str:
    """The longest folder holding both ``folder`` (None: nothing yet) and ``path``'s folder."""
    parent = posixpath.dirname(posixpath.normpath(path))
    if folder is None:
        return parent
    return posixpath.commonpath((folder, parent))
