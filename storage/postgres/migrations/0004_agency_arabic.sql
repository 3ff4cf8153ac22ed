-- Ported from storage/sqlite/migrations/0004_agency_arabic.sql by storage/postgres/port.py.
-- Optional Arabic columns of agencies.csv (city_ar, name_ar, address_ar, hours_ar): shown in
-- Arabic replies instead of the Latin text where the distributor's data has them.
ALTER TABLE agencies ADD COLUMN city_ar TEXT;
ALTER TABLE agencies ADD COLUMN name_ar TEXT;
ALTER TABLE agencies ADD COLUMN address_ar TEXT;
ALTER TABLE agencies ADD COLUMN hours_ar TEXT;
