"""DICOM results (parametric maps, segmentations, structured reports) and DICOMweb, for PACS."""
