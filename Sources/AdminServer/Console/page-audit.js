// page-audit.js: written on branch console-pages
