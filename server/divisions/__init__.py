"""Statistical division codes (统计用区划代码): provinces down to villages."""
