-- Destinations and export targets follow the log in the one cursor table (storage/followers.py).
INSERT INTO processor_offsets (name, seq, updated_at, kind)
    SELECT 'destination:' || name, cursor, created_at, 'destination' FROM destinations WHERE 1 = 1
    ON CONFLICT (name) DO NOTHING;
INSERT INTO processor_offsets (name, seq, updated_at, kind)
    SELECT 'export:' || name, seq, updated_at, 'export' FROM export_targets WHERE 1 = 1
    ON CONFLICT (name) DO NOTHING;
