// page-chat.js: written on branch console-pages
