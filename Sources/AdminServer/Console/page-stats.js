// page-stats.js: written on branch console-pages
