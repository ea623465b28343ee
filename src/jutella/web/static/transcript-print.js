// The console's printable transcript page: its one button prints it.
const button = document.getElementById("print");
if (button) button.addEventListener("click", () => window.print());
