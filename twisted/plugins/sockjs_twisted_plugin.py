from twisted.application.service import ServiceMaker

sockjs = ServiceMaker(
    "SockJS server",
    "sockjs_twisted._tap",
    "Serve SockJS: the standard test services, or your own protocol factory.",
    "sockjs",
)
