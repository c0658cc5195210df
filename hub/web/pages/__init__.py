"""The portal's HTML pages: ``routes`` (directory, home, record, catalogue, search),
``render`` (templates, views and error pages), ``tags`` (the meta tags and the 当前位置
breadcrumb each page carries) and ``sitemaps`` (robots.txt, the sitemap index and the
sitemaps for crawlers and archives)."""
