// page-tokens.js: written on branch console-pages
