"""Static files of the web widget (widget.js) and the demo page (demo.html), served by bot.api.routes.chat."""
