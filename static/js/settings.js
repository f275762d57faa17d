// The settings page: the details form is a plain POST (errors beside each field, from the server);
// here: alerts on this device, the list of devices that get them, and the install hint.

import { enableHere, showDevices } from "./alerts.js";
import { $ } from "./base.js";
import { startPortal } from "./portal.js";

const devices = $('[data-testid="push-devices"]');
const devicesEmpty = $('[data-role="devices-empty"]');
const line = $('[data-testid="settings-push-message"]');
const loadDevices = () => showDevices(devices, devicesEmpty, line);

const button = $('[data-testid="settings-push-enable"]');
button.addEventListener("click", () => enableHere(button, line));
// Turned on here or from the bell's panel: the list shows the new device.
document.addEventListener("mc:push-saved", loadDevices);

// ---- install: the browser's own prompt where it offers one, the steps on an iPhone or iPad ----

const install = $('[data-testid="install-section"]');
const installButton = $('[data-testid="install-app"]');
const standalone = matchMedia("(display-mode: standalone)").matches || navigator.standalone === true;
const apple = /iPhone|iPad|iPod/.test(navigator.userAgent) || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
let offer = null;

if (!standalone && apple) {
  install.hidden = false;
  $('[data-testid="install-ios"]').hidden = false;
}
window.addEventListener("beforeinstallprompt", (event) => {
  event.preventDefault(); // offered by our button, not by the browser's banner
  offer = event;
  install.hidden = installButton.hidden = false;
});
installButton.addEventListener("click", async () => {
  if (!offer) return;
  offer.prompt();
  await offer.userChoice;
  offer = null;
  install.hidden = true;
});
window.addEventListener("appinstalled", () => {
  install.hidden = true;
});

startPortal(loadDevices);
