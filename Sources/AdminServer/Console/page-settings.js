// page-settings.js: written on branch console-pages
