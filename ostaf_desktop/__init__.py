"""OSTAF Desktop: the Qt application over the `ostaf` core."""

# How desktops match the running window to its launcher entry: Qt reports the application name
# as the X11 window class (WM_CLASS) and the desktop file name as the Wayland app id, so both are
# this id, which is also the name of packaging/linux/ostaf.desktop and its StartupWMClass.
APP_ID = "ostaf"
