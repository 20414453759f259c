-- Stored templates (/v1/templates): each tenant's templates, the draft as
-- last saved and the version sends use, as published.
CREATE TABLE templates (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  -- The template's content (JSON: name, subject, html, text, variables).
  draft TEXT NOT NULL,
  -- The content as last published; NULL until the first publish.
  published TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  published_at INTEGER
);
CREATE INDEX templates_by_tenant ON templates (tenant, created_at);
