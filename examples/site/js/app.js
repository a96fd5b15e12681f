// Shows when the page was loaded, so a reload is easy to see.
document.querySelector("#clock time").textContent = new Date().toLocaleTimeString();
