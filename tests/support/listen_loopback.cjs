// Preloaded into the web-push-testing server (tests/support/web_push_testing.py): its script listens on
// every interface; a test's server listens on loopback only. A listen(port, ...) gets host 127.0.0.1.
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" && typeof args[1] !== "string") {
    args.splice(1, 0, "127.0.0.1");
  }
  return listen.apply(this, args);
};
