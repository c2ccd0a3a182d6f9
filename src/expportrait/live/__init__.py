"""Live: a source portrait driven frame by frame as the driver's frames arrive (``expportrait
live``, the app's Live tab): ``live.track`` follows and fits the driver causally, ``live.session``
puts it together with the streaming engine (``engines.stream``)."""
